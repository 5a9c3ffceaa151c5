; tkc kernel ropeInterleaved
target triple = "amdgcn-amd-amdhsa"


define amdgpu_kernel void @ropeInterleaved(ptr addrspace(1) align 16 %x, ptr addrspace(1) align 16 %y, ptr addrspace(1) align 16 %offset_mem, float %theta) #0 {
entry:
  %p0 = getelementptr inbounds i32, ptr addrspace(1) %offset_mem, i64 0
  %t1 = load i32, ptr addrspace(1) %p0, align 4
  %t2 = call i32 @llvm.amdgcn.workgroup.id.x()
  %t3 = add nsw i32 0, 24
  br label %loop4
loop4:
  %i.8 = phi i32 [ 0, %entry ], [ %next9, %latch6 ]
  %t10 = icmp slt i32 %i.8, %t3
  br i1 %t10, label %body5, label %exit7
body5:
  %t11 = sitofp i32 %t1 to float
  %t12 = mul i32 %i.8, 2
  %t13 = sitofp i32 %t12 to float
  %t14 = fdiv float %t13, 0x4048000000000000
  %t15 = call float @llvm.log2.f32(float %theta)
  %t16 = fmul float %t14, %t15
  %t17 = call float @llvm.exp2.f32(float %t16)
  %t18 = fdiv float 0x3FF0000000000000, %t17
  %t19 = fmul contract float %t11, %t18
  %t20 = fmul float %t19, 0x3FC45F3060000000
  %t21 = call float @llvm.roundeven.f32(float %t20)
  %t22 = fsub float -0.0, %t21
  %t23 = call float @llvm.fma.f32(float %t22, float 0x401921FB60000000, float %t19)
  %t24 = fsub float -0.0, %t21
  %t25 = call float @llvm.fma.f32(float %t24, float 0xBE8777A5C0000000, float %t23)
  %t26 = call float @llvm.cos.f32(float %t25)
  %t27 = fmul float %t19, 0x3FC45F3060000000
  %t28 = call float @llvm.roundeven.f32(float %t27)
  %t29 = fsub float -0.0, %t28
  %t30 = call float @llvm.fma.f32(float %t29, float 0x401921FB60000000, float %t19)
  %t31 = fsub float -0.0, %t28
  %t32 = call float @llvm.fma.f32(float %t31, float 0xBE8777A5C0000000, float %t30)
  %t33 = call float @llvm.sin.f32(float %t32)
  %t34 = sext i32 %t2 to i64
  %t35 = mul nsw i64 %t34, 48
  %t36 = sext i32 %i.8 to i64
  %t37 = mul nsw i64 %t36, 2
  %t38 = add nsw i64 %t35, %t37
  %p39 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t38
  %t40 = load half, ptr addrspace(1) %p39, align 2
  %t41 = fpext half %t40 to float
  %t42 = sext i32 %t2 to i64
  %t43 = mul nsw i64 %t42, 48
  %t44 = sext i32 %i.8 to i64
  %t45 = mul nsw i64 %t44, 2
  %t46 = add nsw i64 %t45, 1
  %t47 = add nsw i64 %t43, %t46
  %p48 = getelementptr inbounds half, ptr addrspace(1) %x, i64 %t47
  %t49 = load half, ptr addrspace(1) %p48, align 2
  %t50 = fpext half %t49 to float
  %t51 = fmul contract float %t41, %t26
  %t52 = fmul contract float %t50, %t33
  %t53 = fsub contract float %t51, %t52
  %t54 = fptrunc float %t53 to half
  %t55 = sext i32 %t2 to i64
  %t56 = mul nsw i64 %t55, 48
  %t57 = sext i32 %i.8 to i64
  %t58 = mul nsw i64 %t57, 2
  %t59 = add nsw i64 %t56, %t58
  %p60 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t59
  store half %t54, ptr addrspace(1) %p60, align 2
  %t61 = fmul contract float %t41, %t33
  %t62 = fmul contract float %t50, %t26
  %t63 = fadd contract float %t61, %t62
  %t64 = fptrunc float %t63 to half
  %t65 = sext i32 %t2 to i64
  %t66 = mul nsw i64 %t65, 48
  %t67 = sext i32 %i.8 to i64
  %t68 = mul nsw i64 %t67, 2
  %t69 = add nsw i64 %t68, 1
  %t70 = add nsw i64 %t66, %t69
  %p71 = getelementptr inbounds half, ptr addrspace(1) %y, i64 %t70
  store half %t64, ptr addrspace(1) %p71, align 2
  br label %latch6
latch6:
  %next9 = add nsw i32 %i.8, 1
  br label %loop4
exit7:
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
