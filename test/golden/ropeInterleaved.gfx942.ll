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
  %t15 = sitofp i32 48 to float
  %t16 = fdiv float %t14, %t15
  %t17 = call float @llvm.log2.f32(float %theta)
  %t18 = fmul float %t16, %t17
  %t19 = call float @llvm.exp2.f32(float %t18)
  %t20 = fdiv float 0x3FF0000000000000, %t19
  %t21 = fmul contract float %t12, %t20
  %t22 = fmul float %t21, 0x3FC45F3060000000
  %t23 = call float @llvm.roundeven.f32(float %t22)
  %t24 = fsub float -0.0, %t23
  %t25 = call float @llvm.fma.f32(float %t24, float 0x401921FB60000000, float %t21)
  %t26 = fsub float -0.0, %t23
  %t27 = call float @llvm.fma.f32(float %t26, float 0xBE8777A5C0000000, float %t25)
  %t28 = call float @llvm.cos.f32(float %t27)
  %t29 = fmul float %t21, 0x3FC45F3060000000
  %t30 = call float @llvm.roundeven.f32(float %t29)
  %t31 = fsub float -0.0, %t30
  %t32 = call float @llvm.fma.f32(float %t31, float 0x401921FB60000000, float %t21)
  %t33 = fsub float -0.0, %t30
  %t34 = call float @llvm.fma.f32(float %t33, float 0xBE8777A5C0000000, float %t32)
  %t35 = call float @llvm.sin.f32(float %t34)
  %t36 = mul i32 %t3, 48
  %t37 = mul i32 %i.9, 2
  %t38 = add i32 %t36, %t37
  %t39 = sext i32 %t38 to i64
  %p40 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t39
  %t41 = load half, ptr addrspace(1) %p40, align 2
  %t42 = fpext half %t41 to float
  %t43 = mul i32 %t3, 48
  %t44 = mul i32 %i.9, 2
  %t45 = add i32 %t44, 1
  %t46 = add i32 %t43, %t45
  %t47 = sext i32 %t46 to i64
  %p48 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t47
  %t49 = load half, ptr addrspace(1) %p48, align 2
  %t50 = fpext half %t49 to float
  %t51 = fmul contract float %t42, %t28
  %t52 = fmul contract float %t50, %t35
  %t53 = fsub contract float %t51, %t52
  %t54 = fptrunc float %t53 to half
  %t55 = mul i32 %t3, 48
  %t56 = mul i32 %i.9, 2
  %t57 = add i32 %t55, %t56
  %t58 = sext i32 %t57 to i64
  %p59 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t58
  store half %t54, ptr addrspace(1) %p59, align 2
  %t60 = fmul contract float %t42, %t35
  %t61 = fmul contract float %t50, %t28
  %t62 = fadd contract float %t60, %t61
  %t63 = fptrunc float %t62 to half
  %t64 = mul i32 %t3, 48
  %t65 = mul i32 %i.9, 2
  %t66 = add i32 %t65, 1
  %t67 = add i32 %t64, %t66
  %t68 = sext i32 %t67 to i64
  %p69 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t68
  store half %t63, ptr addrspace(1) %p69, align 2
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
