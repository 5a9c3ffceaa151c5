; tkc kernel ropeInterleaved
target triple = "amdgcn-amd-amdhsa"


define amdgpu_kernel void @ropeInterleaved(ptr addrspace(1) align 16 %x, ptr addrspace(1) align 16 %y, ptr addrspace(1) align 16 %offset_mem, float %theta) #0 {
entry:
  %t0 = sext i32 0 to i64
  %p1 = getelementptr inbounds i32, ptr addrspace(1) %offset_mem, i64 %t0
  %t2 = load i32, ptr addrspace(1) %p1, align 4
  %t3 = call i32 @llvm.amdgcn.workgroup.id.x()
  %t4 = add nsw i32 0, 24
  br label %loop5
loop5:
  %i.9 = phi i32 [ 0, %entry ], [ %next10, %latch7 ]
  %t11 = icmp slt i32 %i.9, %t4
  br i1 %t11, label %body6, label %exit8
body6:
  %t12 = sitofp i32 %t2 to float
  %t13 = mul i32 %i.9, 2
  %t14 = sitofp i32 %t13 to float
  %t15 = fdiv float %t14, 0x4048000000000000
  %t16 = call float @llvm.log2.f32(float %theta)
  %t17 = fmul float %t15, %t16
  %t18 = call float @llvm.exp2.f32(float %t17)
  %t19 = fdiv float 0x3FF0000000000000, %t18
  %t20 = fmul contract float %t12, %t19
  %t21 = fmul float %t20, 0x3FC45F3060000000
  %t22 = call float @llvm.roundeven.f32(float %t21)
  %t23 = fsub float -0.0, %t22
  %t24 = call float @llvm.fma.f32(float %t23, float 0x401921FB60000000, float %t20)
  %t25 = fsub float -0.0, %t22
  %t26 = call float @llvm.fma.f32(float %t25, float 0xBE8777A5C0000000, float %t24)
  %t27 = call float @llvm.cos.f32(float %t26)
  %t28 = fmul float %t20, 0x3FC45F3060000000
  %t29 = call float @llvm.roundeven.f32(float %t28)
  %t30 = fsub float -0.0, %t29
  %t31 = call float @llvm.fma.f32(float %t30, float 0x401921FB60000000, float %t20)
  %t32 = fsub float -0.0, %t29
  %t33 = call float @llvm.fma.f32(float %t32, float 0xBE8777A5C0000000, float %t31)
  %t34 = call float @llvm.sin.f32(float %t33)
  %t35 = mul i32 %t3, 48
  %t36 = mul i32 %i.9, 2
  %t37 = add i32 %t35, %t36
  %t38 = sext i32 %t37 to i64
  %p39 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t38
  %t40 = load half, ptr addrspace(1) %p39, align 2
  %t41 = fpext half %t40 to float
  %t42 = mul i32 %t3, 48
  %t43 = mul i32 %i.9, 2
  %t44 = add i32 %t43, 1
  %t45 = add i32 %t42, %t44
  %t46 = sext i32 %t45 to i64
  %p47 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t46
  %t48 = load half, ptr addrspace(1) %p47, align 2
  %t49 = fpext half %t48 to float
  %t50 = fmul contract float %t41, %t27
  %t51 = fmul contract float %t49, %t34
  %t52 = fsub contract float %t50, %t51
  %t53 = fptrunc float %t52 to half
  %t54 = mul i32 %t3, 48
  %t55 = mul i32 %i.9, 2
  %t56 = add i32 %t54, %t55
  %t57 = sext i32 %t56 to i64
  %p58 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t57
  store half %t53, ptr addrspace(1) %p58, align 2
  %t59 = fmul contract float %t41, %t34
  %t60 = fmul contract float %t49, %t27
  %t61 = fadd contract float %t59, %t60
  %t62 = fptrunc float %t61 to half
  %t63 = mul i32 %t3, 48
  %t64 = mul i32 %i.9, 2
  %t65 = add i32 %t64, 1
  %t66 = add i32 %t63, %t65
  %t67 = sext i32 %t66 to i64
  %p68 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t67
  store half %t62, ptr addrspace(1) %p68, align 2
  br label %latch7
latch7:
  %next10 = add nsw i32 %i.9, 1
  br label %loop5
exit8:
  ret void
}

declare float @llvm.cos.f32(float)
declare float @llvm.exp2.f32(float)
declare float @llvm.fma.f32(float, float, float)
declare float @llvm.log2.f32(float)
declare float @llvm.roundeven.f32(float)
declare float @llvm.sin.f32(float)
declare i32 @llvm.amdgcn.workgroup.id.x()

attributes #0 = { "amdgpu-flat-work-group-size"="1,1" }
!0 = distinct !{!0, !1}
!1 = !{!"llvm.loop.unroll.full"}
